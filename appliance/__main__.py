"""`python -m appliance` runs the `tablebox` command line."""

from appliance.cli import main

raise SystemExit(main())
