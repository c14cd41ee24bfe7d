from ts_eval.cli import main

raise SystemExit(main())
