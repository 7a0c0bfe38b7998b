from bot.process import collector_paused

with collector_paused():  # the command line's own imports are start-up too
    from bot.interfaces.cli import main

raise SystemExit(main())
