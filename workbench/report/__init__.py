"""The nightly report: the papermill runner, what notebooks record, the index page and notebook setup."""
