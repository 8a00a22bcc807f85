#!/bin/sh
# `make demo`: runs the example pipeline with the freshly built host.
set -e
BUILD=${BUILD:-build}
cd examples/fingerprints
../../"$BUILD"/tide run main.lua
