"""How a customer is shown: the contact and site cards' rules, vCard and calendar files."""
