import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { didYouMean, suggest } from '../../src/rules/suggest.js';

describe('suggest', () => {
  const actions = ['exec', 'fork', 'exit', 'connect', 'accept', 'dns_query', 'file_open'];

  it('names the closest candidate within a third of the name', () => {
    assert.equal(suggest('conect', actions), 'connect');
    assert.equal(suggest('EXEC', actions), 'exec');
    assert.equal(suggest('dns_qeury', actions), 'dns_query');
  });

  it('counts two neighbouring letters swapped as one edit', () => {
    assert.equal(suggest('exce', actions), 'exec');
    assert.equal(suggest('frok', actions), 'fork');
  });

  it('names the one candidate that a name cut short begins', () => {
    assert.equal(suggest('file', actions), 'file_open');
    assert.equal(suggest('dns', actions), 'dns_query');
    // Two candidates begin with it: no guess.
    assert.equal(suggest('ex', actions), undefined); // too short to guess from
    assert.equal(suggest('fil', ['file_open', 'file_rename']), undefined);
  });

  it('gives nothing for a name far from every candidate', () => {
    assert.equal(suggest('zzzzzz', actions), undefined);
    assert.equal(suggest('x', []), undefined);
    assert.equal(didYouMean(undefined), '');
    assert.equal(didYouMean('exec'), "; did you mean 'exec'?");
  });
});
