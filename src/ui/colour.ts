/** Colour is on only for a TTY and when NO_COLOR is not set (https://no-color.org). */
export function colourEnabled(stream: NodeJS.WriteStream = process.stdout): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR === '0') return false;
  return Boolean(stream.isTTY);
}

const wrap = (open: number, close: number) => (s: string, stream?: NodeJS.WriteStream) =>
  colourEnabled(stream) ? `\u001b[${open}m${s}\u001b[${close}m` : s;

export const c = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  red: wrap(31, 39),
  green: wrap(32, 39),
  yellow: wrap(33, 39),
  cyan: wrap(36, 39),
};
