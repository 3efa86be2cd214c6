"""`t2i generate` and `t2i eval`: each module has `main(argv) -> exit code`, imported when it runs."""
