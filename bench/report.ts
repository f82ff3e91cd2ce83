/** One benchmark's outcome: measured rows, and the ratio against its same-run baseline. */
export interface BenchResult {
  name: string;
  rows: Array<{ label: string; value: number; unit: string }>;
  /** The measured thing over its baseline, both from the same run. */
  ratio: number;
  /** What the ratio should meet, in words (such as `ratio <= 20`). */
  target?: string;
  pass?: boolean;
}

/** Prints results as a plain table on stdout, one block per benchmark. */
export function printReport(results: BenchResult[]): void {
  const lines: string[] = [];

  for (const result of results) {
    const verdict = result.pass === undefined ? '' : result.pass ? '  PASS' : '  FAIL';
    const target = result.target === undefined ? '' : `  (target ${result.target})`;
    const width = Math.max(...result.rows.map((row) => row.label.length), 'ratio'.length);

    lines.push(result.name);
    for (const row of result.rows) {
      lines.push(
        `  ${row.label.padEnd(width)}  ${formatValue(row.value).padStart(12)} ${row.unit}`,
      );
    }

    lines.push(
      `  ${'ratio'.padEnd(width)}  ${formatValue(result.ratio).padStart(12)} x${target}${verdict}`,
    );
    lines.push('');
  }

  process.stdout.write(lines.join('\n'));
}

function formatValue(value: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }

  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}
