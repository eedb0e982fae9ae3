"""The flash-sale benchmark: `make bench` runs bench/run_bench.py."""
