// The confusion matrix as a heat map that is a real table: rows are true classes, columns
// predicted ones, both axes header cells, each cell the raw count, linking to those images.
import { linkProps } from '../router.ts';

export function ConfusionMatrix({ runId, classes, matrix }: { runId: string; classes: string[]; matrix: number[][] }) {
  const max = Math.max(1, ...matrix.flat());
  return (
    <table class="confusion">
      <caption>Confusion matrix: rows are true classes, columns predicted classes</caption>
      <thead>
        <tr>
          <td />
          {classes.map((c) => (
            <th scope="col">{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {matrix.map((row, i) => (
          <tr>
            <th scope="row">{classes[i]}</th>
            {row.map((count, j) => {
              const shade = count / max;
              const style = { background: `rgba(${i === j ? '22, 128, 60' : '200, 40, 40'}, ${0.08 + 0.8 * shade})`, color: shade > 0.55 ? '#fff' : undefined };
              return (
                <td style={style}>
                  {count > 0 ? (
                    <a
                      {...linkProps(`/test-runs/${runId}?true=${encodeURIComponent(classes[i]!)}&pred=${encodeURIComponent(classes[j]!)}#images`)}
                      aria-label={`${count} images of ${classes[i]} predicted as ${classes[j]}`}
                    >
                      {count}
                    </a>
                  ) : (
                    count
                  )}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
