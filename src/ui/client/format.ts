/** How numbers and times read on the pages. */

const numbers = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

export const num = (n: number) => numbers.format(n);

export function rate(perSecond: number): string {
  if (perSecond === 0) return "0";
  if (perSecond < 0.1) return `${numbers.format(perSecond * 60)}/min`;
  return `${numbers.format(perSecond)}/s`;
}

export function when(iso: string | null): string {
  if (!iso) return "—";
  return iso
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z")
    .replace(/:\d\dZ$/, "Z");
}

export const percent = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 100) : 0);
