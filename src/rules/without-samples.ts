/**
 * A rule file's text with the `samples:` of its rules blanked out, for the loaders that never run
 * them (the server, `hades rules match`): in the default pack they are two thirds of the bytes
 * and most of the YAML parser's time, and the server loads its rules twice at each start (its
 * detector and its ingest worker). Every line keeps its place, so the lines and columns of
 * problems are those of the file.
 *
 * Only a key at the indentation of the rule entries' own keys is taken out: a line of the `rules:`
 * section (column 0) that begins, at that indentation, with `samples:`. Nothing else can begin
 * there inside an entry: a block scalar, a flow collection over several lines or a multi-line
 * scalar must be indented further than the key it belongs to. What follows it is taken out up to
 * the next line with content at that indentation or less. `hades rules test` reads the samples
 * (loadRules with `samples: true`, the default); a file whose samples are broken YAML is reported
 * there, not by the server, which has no use for them.
 */

const SAMPLES_KEY = /^samples:(?:\s|$)/;

/** The text with every rule entry's `samples:` blanked (same number of lines); the text itself when it has none. */
export function withoutSamples(text: string): string {
  if (!text.includes('samples:')) return text;
  const lines = text.split('\n');
  let inRules = false;
  /** The indentation of the keys of the `rules:` entries (that of their `- ` plus 2), once known. */
  let keyIndent = -1;
  /** Inside a samples block being blanked: its key's indentation. */
  let blanking = -1;
  let changed = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const indent = indentation(line);
    const content = indent < line.length && line[indent] !== '#' && line.trim() !== '';
    if (blanking >= 0) {
      if (!content || indent > blanking) {
        lines[i] = '';
        continue;
      }
      blanking = -1;
    }
    if (!content) continue;
    if (indent === 0) {
      // `- id: x` at column 0: the entries of a section written without indenting them.
      if (inRules && line.startsWith('- ')) {
        keyIndent = 2;
        continue;
      }
      inRules = /^rules:\s*(#.*)?\r?$/.test(line);
      keyIndent = -1;
      continue;
    }
    if (!inRules) continue;
    if (keyIndent < 0) {
      // The first entry of the section: `  - id: x`.
      if (line[indent] !== '-' || line[indent + 1] !== ' ') continue;
      keyIndent = indent + 2;
      continue;
    }
    if (indent === keyIndent && SAMPLES_KEY.test(line.slice(indent))) {
      lines[i] = '';
      blanking = indent;
      changed = true;
    }
  }
  return changed ? lines.join('\n') : text;
}

function indentation(line: string): number {
  let n = 0;
  while (n < line.length && line.charCodeAt(n) === 32) n++;
  return n;
}
