import { formatPercent } from "../format.js";

/** Bars with counts and shares; the winner (several on a tie) marked. */
export function Results({ results }) {
  if (!results) {
    return (
      <p className="loading" role="status">
        Counting the votes…
      </p>
    );
  }
  const winners = new Set(results.winners || []);
  return (
    <div className="results" data-testid="results">
      <p>
        {results.total_votes} vote{results.total_votes === 1 ? "" : "s"}
        {results.tie ? " · a tie" : ""}
      </p>
      <ul>
        {results.options.map((option) => {
          const winner = winners.has(option.option_id);
          return (
            <li key={option.option_id} className={winner ? "winner" : ""}>
              <div className="result-label">
                <span>
                  {option.name}
                  {winner && <strong className="badge">Winner</strong>}
                </span>
                <span>
                  {option.votes} · {formatPercent(option.share)}
                </span>
              </div>
              <div
                className="bar"
                role="meter"
                aria-label={`${option.name}: ${formatPercent(option.share)}`}
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={Math.round((option.share || 0) * 100)}
              >
                <div className="bar-fill" style={{ width: `${(option.share || 0) * 100}%` }} />
              </div>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
