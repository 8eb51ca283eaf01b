"""`drive carla check`: is a CARLA server reachable, which versions, which maps."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("carla", help="CARLA server utilities (needs the carla extra)")
    inner = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = inner.add_parser("check", help="connect; print client/server versions, current map, map list")
    check.add_argument("--host", default="127.0.0.1", help="server address (127.0.0.1)")
    check.add_argument("--port", type=int, default=2000, help="RPC port (2000)")
    check.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the server (5)")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from sim.carla.connect import CarlaConnectionError, connect
    from sim.carla.world import map_short_name

    try:
        conn = connect(args.host, args.port, args.timeout)
        world = conn.client.get_world()
        settings = world.get_settings()
        current = map_short_name(world.get_map().name)
        maps = sorted(map_short_name(m) for m in conn.client.get_available_maps())
    except ImportError as err:
        print(f"drive carla check: {err}", file=sys.stderr)
        return 2
    except (CarlaConnectionError, RuntimeError) as err:
        print(f"drive carla check: {err}", file=sys.stderr)
        return 1
    step = settings.fixed_delta_seconds
    print(f"CARLA server at {args.host}:{args.port}")
    print(f"  client {conn.client_version}, server {conn.server_version}")
    print(
        f"  current map: {current} (synchronous mode {'on' if settings.synchronous_mode else 'off'}, "
        f"fixed step {f'{step:g} s' if step else 'variable'})"
    )
    print(f"  maps ({len(maps)}): {', '.join(maps)}")
    return 0
