#!/usr/bin/env node
// Kept while scripts move to bin/wasmbox.cjs (the CLI's entry point).
import '../bin/wasmbox.cjs';
