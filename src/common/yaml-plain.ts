/**
 * A YAML document as plain values, for texts from outside (configurations, group configurations
 * pushed through the API, rule files, Sigma rules). Aliases are expanded up to a count (a
 * "billion laughs" text is refused by the yaml library), and a structure that contains itself (an
 * alias inside the node its anchor names, `a: &a [*a]`) is refused here: the yaml library makes it
 * a cyclic object, which every recursive walk of the value (the checks of a configuration, a
 * JSON.stringify) would follow until the stack overflows.
 */
import type { Document } from 'yaml';
import { HadesError, type ErrorCode } from './errors.js';

export const MAX_YAML_ALIASES = 100;

/** The document's value; throws what is wrong (the yaml library's Error for too many aliases, `code` for a value that contains itself). */
export function yamlToPlain(doc: Document, code: ErrorCode = 'HADES_ERR_CONFIG_SYNTAX'): unknown {
  const value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
  if (containsItself(value)) throw new HadesError(code, 'an alias stands inside the node its anchor names: the value would contain itself');
  return value;
}

/** Whether a value reaches itself through its members (a depth-first walk without recursion: aliases may nest deeper than the text does). */
function containsItself(root: unknown): boolean {
  if (root === null || typeof root !== 'object') return false;
  const done = new Set<object>();
  const open = new Set<object>();
  const stack: { readonly node: object; readonly children: unknown[]; next: number }[] = [];
  const enter = (node: object) => {
    open.add(node);
    stack.push({ node, children: node instanceof Map ? [...node.keys(), ...node.values()] : node instanceof Set ? [...node] : Object.values(node), next: 0 });
  };
  enter(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next === top.children.length) {
      stack.pop();
      open.delete(top.node);
      done.add(top.node);
      continue;
    }
    const child = top.children[top.next++];
    if (child === null || typeof child !== 'object' || done.has(child)) continue;
    if (open.has(child)) return true;
    enter(child);
  }
  return false;
}
