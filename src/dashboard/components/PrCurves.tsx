// Precision-recall curves at IoU 0.5 (pycocotools' precision at 101 recall thresholds), one line
// per class in its colour; the per-class table beside it gives the same classes' AP in numbers.
import { colorOf } from './draw.ts';

const W = 360;
const H = 240;
const PAD = 36;

export function PrCurves({ rows }: { rows: Array<{ class_id: number; class_name: string; ap50?: number | null; pr_curve?: number[] | null }> }) {
  const curves = rows.filter((r) => r.pr_curve && r.pr_curve.length > 1);
  if (curves.length === 0) return null;
  const x = (recall: number) => PAD + recall * (W - PAD - 8);
  const y = (precision: number) => H - PAD - precision * (H - PAD - 8);
  return (
    <figure class="pr-curves">
      <svg
        width={W}
        height={H}
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`Precision-recall curves at IoU 0.5 for ${curves.map((c) => c.class_name).join(', ')}`}
      >
        <line x1={x(0)} y1={y(0)} x2={x(1)} y2={y(0)} stroke="#57606a" />
        <line x1={x(0)} y1={y(0)} x2={x(0)} y2={y(1)} stroke="#57606a" />
        {[0, 0.5, 1].map((t) => (
          <>
            <text x={x(t)} y={H - PAD + 14} font-size="11" text-anchor="middle">
              {t}
            </text>
            <text x={PAD - 6} y={y(t) + 4} font-size="11" text-anchor="end">
              {t}
            </text>
          </>
        ))}
        <text x={(x(0) + x(1)) / 2} y={H - 6} font-size="12" text-anchor="middle">
          recall
        </text>
        <text x={12} y={(y(0) + y(1)) / 2} font-size="12" text-anchor="middle" transform={`rotate(-90 12 ${(y(0) + y(1)) / 2})`}>
          precision
        </text>
        {curves.map((c) => (
          <polyline
            fill="none"
            stroke={colorOf(c.class_id)}
            stroke-width="2"
            points={c.pr_curve!.map((p, i) => `${x(i / (c.pr_curve!.length - 1)).toFixed(1)},${y(p).toFixed(1)}`).join(' ')}
          />
        ))}
      </svg>
      <figcaption>
        Precision-recall at IoU 0.5:{' '}
        {curves.map((c) => (
          <span class="legend">
            <span class="swatch" style={{ background: colorOf(c.class_id) }} aria-hidden="true" /> {c.class_name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
