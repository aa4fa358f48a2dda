#!/usr/bin/env node
// Committed (unlike dist/) so that npm links the bin at install time, before the first build.
require('../dist/main.js');
