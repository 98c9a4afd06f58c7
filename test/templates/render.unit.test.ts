/**
 * The one template renderer (templates/render.ts): strict (a missing field fails instead of
 * rendering empty), no HTML escaping, the shell-quoting helpers and the shared partials on the
 * same instance, and errors that name the template file and line.
 */
import { describe, expect, it } from 'vitest';
import { GridforgeError } from '../../base/errors.ts';
import { renderTemplate, renderText, TEMPLATES_DIR } from '../../templates/render.ts';

function renderError(fn: () => unknown): GridforgeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GridforgeError);
    return err as GridforgeError;
  }
  throw new Error('expected the render to fail');
}

describe('templates/render.ts', () => {
  it('a missing field fails (strict) and the error names the file and line', () => {
    const e = renderError(() => renderText('/virtual/t.hbs', 'line one\nline two {{missing}}\n', {}));
    expect(e.where).toBe('/virtual/t.hbs:2');
    expect(e.message).toMatch(/missing/);
  });

  it('a syntax error names the file and line', () => {
    const e = renderError(() => renderText('/virtual/bad.hbs', 'ok\nok\n{{#each x}}\n', { x: [] }));
    expect(e.where).toMatch(/^\/virtual\/bad\.hbs:\d+$/);
  });

  it('values are not HTML-escaped; sh/shword/comment/envname quote for the shell', () => {
    const out = renderText('/virtual/s.hbs', "{{v}} {{sh v}} {{shword p}} {{shword v}} # {{comment c}}\n{{envname n}}", { v: `a<b>&"it's"`, p: '/cvmfs/x', c: 'one\ntwo', n: 'JALIEN_X' });
    expect(out).toBe(`a<b>&"it's" 'a<b>&"it'\\''s"' /cvmfs/x 'a<b>&"it'\\''s"' # one?two\nJALIEN_X`);
    const e = renderError(() => renderText('/virtual/e.hbs', '{{envname n}}', { n: 'X;rm' }));
    expect(e.message).toMatch(/not an environment variable name/);
  });

  it('the image partials and the release templates render from the one instance and TEMPLATES_DIR', () => {
    const step = renderText('/virtual/p.hbs', '{{> install-apt packages=pkgs repoSetup=none}}', { pkgs: ['bash'], none: [] });
    expect(step).toContain('apt-get install');
    expect(renderTemplate('modulefiles/default-version.tcl.hbs', { module: 'JAliEn', version: '2.1.4-1' })).toContain('set ModulesVersion "2.1.4-1"');
    expect(TEMPLATES_DIR).toMatch(/\/templates\/$/);
  });
});
