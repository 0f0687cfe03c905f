// ECharts with only what the console draws (line and bar charts, SVG renderer): tree-shaken imports.
import { useEffect, useRef } from 'react';
import * as echarts from 'echarts/core';
import { BarChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent, MarkLineComponent, AriaComponent } from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';
import type { EChartsCoreOption } from 'echarts/core';

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, TooltipComponent, MarkLineComponent, AriaComponent, SVGRenderer]);

/** Data points above zero in the option's series (0: an empty chart, shown with a note). */
function pointsOf(option: EChartsCoreOption): number {
  const series = (option as { series?: { data?: unknown[] }[] }).series ?? [];
  return series.reduce((n, s) => n + (s.data ?? []).filter((v) => typeof v === 'number' && v > 0).length, 0);
}

export function Chart({ option, label, testId, empty }: { option: EChartsCoreOption; label: string; testId: string; empty?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);
  useEffect(() => {
    if (!ref.current) return;
    const instance = echarts.init(ref.current, undefined, { renderer: 'svg' });
    chart.current = instance;
    const observer = new ResizeObserver(() => instance.resize());
    observer.observe(ref.current);
    return () => {
      observer.disconnect();
      instance.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    chart.current?.setOption({ aria: { enabled: true }, animation: false, ...option }, true);
  }, [option]);
  const points = pointsOf(option);
  return (
    <>
      <div className="chart" ref={ref} role="img" aria-label={label} data-testid={testId} data-points={points} />
      {empty && points === 0 && <p className="empty">{empty}</p>}
    </>
  );
}
