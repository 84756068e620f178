// Prints one plain "N passed, N failed[, N skipped]" line from vitest JSON reports,
// after the name and first message line of each failed test (so a CI log's tail says what failed).
import { existsSync, readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';

let passed = 0, failed = 0, skipped = 0, reports = 0;
const failures = [];
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const run = basename(file, '.json');
  reports++;
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  for (const s of r.testResults ?? []) {
    const where = relative(process.cwd(), s.name ?? '');
    // A test file that failed to load counts as a failure even when it holds no test.
    if (s.status === 'failed' && (s.assertionResults ?? []).length === 0) {
      failed++;
      failures.push(`${run}: ${where}: ${firstLine(s.message)}`);
    }
    for (const t of s.assertionResults ?? []) {
      if (t.status === 'failed') failures.push(`${run}: ${where} > ${t.fullName}: ${firstLine(t.failureMessages?.[0])}`);
    }
  }
}
if (reports === 0) failed = 1;
for (const f of failures) console.log(`FAILED ${f}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);

function firstLine(text) {
  return String(text ?? '').split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 300) ?? '';
}
