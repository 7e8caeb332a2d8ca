"""`python -m cli`: the same as the `voucherify-ingest` console script."""

from cli import main

if __name__ == "__main__":
    raise SystemExit(main())
