"""The test suite, a mirror of the packages: helpers in auxil/, the fake platforms in fakes/."""
