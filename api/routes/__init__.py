"""HTTP routes of the gridmend API, one module per kind of user."""
