"""Write the sample clip: a camera pan and zoom over a bundled photo. python scripts/make_clip.py [-o OUT.mp4]

3 s at 24 fps, 256 px on the long side, from nstkit/media/samples/content/chelsea.jpg (CC0, Stefan van der Walt; nstkit/media/samples/README.md),
so the clip is CC0 as well. The same bytes every time (`research.sample_clip.camera_move`), so it is made, not stored.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # research/ is the clone's, not the package's

from nstkit.core.errors import NstkitError  # noqa: E402
from nstkit.media.clips import write_mp4
from nstkit.media.images import bundled_image
from research.sample_clip import camera_move

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "out" / "sample_clip.mp4")
    parser.add_argument("--image", default="chelsea.jpg", help="a bundled content image")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--max-dim", type=int, default=256)
    args = parser.parse_args()
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        frames = camera_move(bundled_image(args.image), args.seconds, args.fps, args.max_dim)
        write_mp4(args.output, frames, args.fps)
    except NstkitError as error:
        print(f"make_clip: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} px at {args.fps:g} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
