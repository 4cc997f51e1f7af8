"""Gang restart (issue 14): one fault restarts every Pod of a distributed job in place.

The gang monitor reports edges of the gang's coordination as findings; the policy
decides; the actions write early. See docs/gang.md."""
