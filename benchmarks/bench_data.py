"""Time stage 1 on hotel_bookings (119,390 rows): load from a CSV file, clean, infer the schema, validate.

Run: `python benchmarks/bench_data.py [--repeat 3]`; prints the best wall time of each step.
"""
import argparse, tempfile, time
from pathlib import Path
from assembly_line.datasets import load_example
from assembly_line.data import load_table
from assembly_line.schema import infer_schema
from assembly_line.clean import clean

def main(repeat:int=3):
    raw = load_example('hotel_bookings')
    with tempfile.TemporaryDirectory() as d:
        path = Path(d)/'hotel_bookings.csv'
        raw.to_csv(path, index=False)
        best = {}
        for _ in range(repeat):
            t0 = time.perf_counter(); df = load_table(path)
            t1 = time.perf_counter(); res = clean(df, target='is_canceled')
            t2 = time.perf_counter(); schema = infer_schema(res.df, target='is_canceled')
            t3 = time.perf_counter(); check = schema.validate(df.head(20000), mode='lenient')
            t4 = time.perf_counter()
            for k, v in dict(load=t1-t0, clean=t2-t1, infer_schema=t3-t2, total=t3-t0, validate_20k=t4-t3).items():
                best[k] = min(best.get(k, v), v)
    print(f"hotel_bookings: {len(df):,} rows x {df.shape[1]} columns -> {len(res.df):,} rows after cleaning, "
          f"{len(schema.features)} features, task {schema.task}; CSV {path.name}")
    for k, v in best.items(): print(f"{k:>14}: {v:6.2f} s")
    print(res.report.to_frame()[['step', 'count', 'unit']].to_string(index=False))

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--repeat', type=int, default=3)
    main(p.parse_args().repeat)
