#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/ to dist/ at install time.
import { main } from '../dist/cli/main.js';
process.exitCode = await main(process.argv.slice(2));
