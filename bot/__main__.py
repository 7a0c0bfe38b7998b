from bot.interfaces.cli import main

raise SystemExit(main())
