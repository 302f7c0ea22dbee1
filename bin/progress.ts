/** A one-line live progress bar on stderr (a TTY), or a line every 10 % otherwise. */
export function progressLine(label: string): {
  update(done: number, total: number, phase?: string): void;
  done(): void;
} {
  const tty = process.stderr.isTTY === true;
  let lastDecile = -1;
  return {
    update(done, total, phase) {
      const ratio = total > 0 ? Math.min(1, done / total) : 0;
      const text = `${label}${phase ? ` ${phase}` : ''} ${done}/${total}`;
      if (tty) {
        const width = 30;
        const filled = Math.round(ratio * width);
        process.stderr.write(
          `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(ratio * 100)}% ${text}\x1b[K`,
        );
      } else {
        const decile = Math.floor(ratio * 10);
        if (decile !== lastDecile) {
          lastDecile = decile;
          process.stderr.write(`${Math.round(ratio * 100)}% ${text}\n`);
        }
      }
    },
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}
