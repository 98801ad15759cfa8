using Shim.Os;
using Shim.Ttrpc;
using Shim.Os.Io;
using Shim.Ttrpc.Transport;

namespace Shim.Core.Transport;

/// <summary>ttrpc over a <see cref="LoopSocket"/>: socket waits run on the io-loop, so the .NET socket engine thread never starts.</summary>
public sealed class LoopTtrpcConnection(LoopSocket socket) : ITtrpcConnection
{
    /// <summary>The socket (for the peer-credential check).</summary>
    public LoopSocket Socket { get; } = socket;

    /// <summary>Connects to the unix socket at <paramref name="path"/> through <paramref name="loop"/>.</summary>
    public static async ValueTask<ITtrpcConnection> ConnectAsync(IoLoop loop, string path, CancellationToken ct) =>
        new LoopTtrpcConnection(await LoopSocket.ConnectAsync(loop, path, ct).ConfigureAwait(false));

    /// <inheritdoc />
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct) => Socket.ReadAsync(buffer, ct);

    /// <inheritdoc />
    public ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct) => Socket.WriteAsync(buffer, ct);

    /// <inheritdoc />
    public void Close() => Socket.Close();
}

/// <summary>A ttrpc listener over a <see cref="LoopListener"/>; closing it stays with its owner.</summary>
public sealed class LoopTtrpcListener(LoopListener listener) : ITtrpcListener
{
    /// <inheritdoc />
    public async ValueTask<ITtrpcConnection> AcceptAsync(CancellationToken ct) =>
        new LoopTtrpcConnection(await listener.AcceptAsync(ct).ConfigureAwait(false));
}
