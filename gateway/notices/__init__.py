"""Subject notices (SPEC 10): a queue of notices to the persons a request named, with due dates."""
