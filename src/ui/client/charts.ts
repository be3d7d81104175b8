/**
 * Charts with uPlot. Each drawn chart's data is also kept on window.gatehouse.charts by name, so the
 * browser tests (and anyone debugging) can read exactly what was plotted rather than its pixels.
 */
import uPlot from "uplot";
import { h } from "./dom.ts";

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
  dash?: number[];
  /** Units shown in the legend. */
  unit?: string;
}

export interface ChartData {
  /** Epoch seconds. */
  x: number[];
  series: Record<string, (number | null)[]>;
}

declare global {
  interface Window {
    gatehouse?: { charts: Record<string, ChartData> };
  }
}

const live = new Map<string, uPlot>();
const HEIGHT = 180;

export function chart(name: string, title: string, x: number[], series: Series[]): HTMLElement {
  const holder = h("figure", { class: "chart", "data-chart": name }, h("figcaption", {}, title));
  window.gatehouse ??= { charts: {} };
  window.gatehouse.charts[name] = {
    x,
    series: Object.fromEntries(series.map((s) => [s.label, s.values])),
  };
  live.get(name)?.destroy();
  // Drawn once the holder is in the page and has a width, and resized with it.
  let plot: uPlot | undefined;
  const observer = new ResizeObserver(() => {
    const width = Math.floor(holder.clientWidth);
    if (width === 0) return;
    if (plot) {
      plot.setSize({ width, height: HEIGHT });
      return;
    }
    plot = new uPlot(
      {
        width,
        height: HEIGHT,
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 1.5,
            ...(s.dash ? { dash: s.dash } : {}),
            spanGaps: false,
            value: (_u: uPlot, v: number | null) => (v === null ? "—" : `${round(v)}${s.unit ?? ""}`),
          })),
        ],
        axes: [{}, { size: 56 }],
        scales: { x: { time: true } },
        legend: { live: true },
      },
      [x, ...series.map((s) => s.values)] as uPlot.AlignedData,
      holder,
    );
    live.set(name, plot);
  });
  observer.observe(holder);
  return holder;
}

const round = (v: number) => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100);
