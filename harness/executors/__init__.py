"""Where worker processes run: a local subprocess per case today; a fleet later."""
