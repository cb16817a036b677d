"""gridmend."""
