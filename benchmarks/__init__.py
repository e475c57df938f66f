"""Development harnesses: accuracy on public data sets (`make benchmark`) and speed, start-up and
memory (`make bench`). Run from a repository checkout; not installed with faqbot."""
