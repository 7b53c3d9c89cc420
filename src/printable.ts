/**
 * Text taken from untrusted files (tensor names, external data locations, header fields) put
 * into an error message: control characters (a newline would break the one-line rule) become
 * '?', and long values are cut.
 */
export function printable(text: string, max = 120): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}
