"""Helpers shared by the test modules (a package, so that doctest collection imports them as tests.support.*)."""
