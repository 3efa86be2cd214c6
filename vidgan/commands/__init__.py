"""`vidgan predict` and `vidgan eval`: each module has `main(argv) -> exit code`, imported when it runs."""
