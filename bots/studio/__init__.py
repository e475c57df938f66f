"""faqbot studio: a local web page where curators review, fix and test the knowledge base.

`faqbot studio` serves it (bots/studio/server.py); the routes are in views.py, the pages in
inbox.py, editor.py, changes.py and views.py (what they share in pages.py) and templates/, their
texts in French and English in texts.py, the stats pictures drawn as SVG by charts.py.
"""
