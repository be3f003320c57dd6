"""A TCP proxy on 127.0.0.1 that can simulate its target (PostgreSQL) going down and coming back.

In tests::

    async with TcpProxy(target_port=5432) as proxy:   # listens on an ephemeral port: proxy.port
        url = proxy.rewrite(postgres_url)              # the same database, through the proxy
        await proxy.cut()                              # every connection closed, new ones refused
        await proxy.restore()                          # accepting and relaying again, on the same port
        proxy.black_hole()                             # connections accepted, nothing relayed either way
        await proxy.restore()                          # what was held back flows again

From a shell (e.g. a benchmark script)::

    python -m tests.tcp_proxy --listen 6543 --target 127.0.0.1:5432 &
    kill -USR1 $!   # cut
    kill -USR2 $!   # restore
    kill -HUP $!    # black hole
    kill $!         # stop

While cut, the listening socket is closed, so clients get "connection refused" at once, as from a
database server that is down. While black-holed, new connections are accepted and bytes are read but held
back (in both directions, on old connections too), as from a server that hangs or a network that drops
packets: only a client-side timeout ends a wait. ``restore`` lets the held bytes through.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from sqlalchemy.engine import make_url

CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432, *,
                 listen_host: str = "127.0.0.1", listen_port: int = 0):
        self.target = (target_host, target_port)
        self.host = listen_host
        self.port = listen_port  # the real port once started
        self.is_cut = False
        self.connections = 0  # accepted since start, for tests that want to see traffic went through
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task] = set()
        self._flowing = asyncio.Event()  # cleared while black-holed
        self._flowing.set()

    @property
    def is_black_holed(self) -> bool:
        return not self._flowing.is_set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self.is_cut = False
        return self

    async def cut(self) -> None:
        """Close every relayed connection abruptly and refuse new ones until ``restore`` (ends a black hole:
        the connections it held are closed too)."""
        self.is_cut = True
        self._flowing.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        for client, upstream in list(self._pairs):
            client.transport.abort()
            upstream.transport.abort()
        self._pairs.clear()
        await asyncio.sleep(0)  # let the relay tasks see their closed transports

    def black_hole(self) -> None:
        """Accept connections but relay nothing, on new and existing connections, until ``restore``."""
        self._flowing.clear()

    async def restore(self) -> None:
        """Listen again on the same port, and relay again what a black hole held back."""
        self._flowing.set()
        if self._server is None:
            await self.start()

    async def aclose(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    def rewrite(self, url: str) -> str:
        """``url`` (e.g. postgresql+asyncpg://user@127.0.0.1:5432/db) pointed at this proxy instead."""
        return make_url(url).set(host=self.host, port=self.port).render_as_string(hide_password=False)

    # -- relaying -------------------------------------------------------------------------------------

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            client_writer.transport.abort()
            return
        self.connections += 1
        await self._flowing.wait()  # black-holed: accepted, but the target never hears of it
        if self.is_cut:
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        pair = (client_writer, upstream_writer)
        self._pairs.add(pair)
        pumps = [asyncio.create_task(_pump(client_reader, upstream_writer, self._flowing)),
                 asyncio.create_task(_pump(upstream_reader, client_writer, self._flowing))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)  # one side closed: close both
        finally:
            self._pairs.discard(pair)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            client_writer.transport.abort()
            upstream_writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK):
            await flowing.wait()  # a black hole holds the bytes back
            writer.write(data)
            await writer.drain()


async def _serve(listen_port: int, target: str) -> None:
    host, _, port = target.rpartition(":")
    proxy = await TcpProxy(host or "127.0.0.1", int(port), listen_port=listen_port).start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    background: set[asyncio.Task] = set()

    def control(action) -> None:
        task = loop.create_task(action())
        background.add(task)
        task.add_done_callback(background.discard)

    loop.add_signal_handler(signal.SIGUSR1, control, proxy.cut)
    loop.add_signal_handler(signal.SIGUSR2, control, proxy.restore)
    loop.add_signal_handler(signal.SIGHUP, proxy.black_hole)
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stop.set)
    print(f"tcp_proxy: 127.0.0.1:{proxy.port} -> {target} (SIGUSR1 cut, SIGUSR2 restore, SIGHUP black hole)",
          flush=True)
    await stop.wait()
    await proxy.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--target", default="127.0.0.1:5432", help="host:port to relay to")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.listen, args.target))


if __name__ == "__main__":
    main()
