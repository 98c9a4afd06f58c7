/**
 * Plain-text tables, one layout everywhere (CLI output, rollout reports, benchmarks): columns
 * padded to their widest cell, a dashed rule under the headers, two spaces between columns.
 */

/** Render `rows` under `headers` as a padded text table. */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [fmt(cells[0]), fmt(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(fmt)].join('\n');
}
