"""Users, passwords and signed bearer tokens."""
