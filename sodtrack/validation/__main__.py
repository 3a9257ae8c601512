"""``python -m sodtrack.validation --check|--write``: the suite files under schemas/expectations."""

from sodtrack.validation.suites import main

raise SystemExit(main())
