/**
 * The report as one self-contained HTML page (inline CSS, no scripts, no external files): a table per
 * fact with the share of nodes per value as a bar, for the whole Grid, each site and each CE.
 */
import { share, sortedValues, type Report, type ValueCounts } from './report.ts';

function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function rows(label: string, ce: string, nodes: number, counts: ValueCounts, key: string): string {
  return sortedValues(counts[key])
    .map(([v, n], i) => {
      const pct = nodes === 0 ? 0 : (100 * n) / nodes;
      return `<tr${i === 0 ? ' class="first"' : ''}><td>${i === 0 ? esc(label) : ''}</td><td>${i === 0 ? esc(ce) : ''}</td><td class="n">${i === 0 ? nodes : ''}</td><td>${esc(v)}</td><td class="n">${n}</td><td class="bar"><span style="width:${pct.toFixed(1)}%"></span><em>${share(n, nodes)}</em></td></tr>`;
    })
    .join('\n');
}

export function renderReportHtml(r: Report): string {
  const sections = r.keys.map((key) => {
    const body = [rows('all sites', '', r.nodes, r.values, key)];
    for (const s of r.sites) {
      body.push(rows(s.site, '', s.nodes, s.values, key));
      if (s.ces.length > 1 || (s.ces.length === 1 && s.ces[0].ce !== s.site)) for (const c of s.ces) body.push(rows(s.site, c.ce, c.nodes, c.values, key));
    }
    return `<section><h2>${esc(key)}</h2><table><thead><tr><th>site</th><th>CE</th><th>nodes</th><th>value</th><th>count</th><th>share</th></tr></thead><tbody>\n${body.join('\n')}\n</tbody></table></section>`;
  });
  const filter = [r.filter.sites.length ? `sites ${r.filter.sites.join(', ')}` : '', r.filter.where.length ? `where ${r.filter.where.join(' and ')}` : ''].filter(Boolean).join('; ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Site Sonar report: ${r.nodes} nodes</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em;min-width:60em}
th,td{padding:2px 8px;text-align:left;border-bottom:1px solid #eee}
tr.first td{border-top:1px solid #bbb}
td.n{text-align:right;font-variant-numeric:tabular-nums}
td.bar{width:18em;position:relative}
td.bar span{display:block;height:1em;background:#4a90d9}
td.bar em{position:absolute;right:8px;top:2px;font-style:normal;font-size:12px}
</style></head><body>
<h1>Site Sonar report</h1>
<p>${r.nodes} nodes in ${r.sites.length} sites${filter ? ` (${esc(filter)})` : ''}; newest result per node and probe; generated ${esc(r.generated)}.</p>
${sections.join('\n')}
</body></html>
`;
}
