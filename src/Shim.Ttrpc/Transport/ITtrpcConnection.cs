namespace Shim.Ttrpc.Transport;

/// <summary>
/// A connected, ordered byte channel carrying ttrpc frames. The server and client use at most one
/// read and one write at a time. I/O failures surface as <see cref="IOException"/> (or
/// <see cref="System.Net.Sockets.SocketException"/>), use after <see cref="Close"/> as
/// <see cref="ObjectDisposedException"/>, cancellation as <see cref="OperationCanceledException"/>.
/// </summary>
public interface ITtrpcConnection
{
    /// <summary>Receives up to <paramref name="buffer"/>.Length bytes; 0 at the end of the stream (the peer closed or reset).</summary>
    ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct);

    /// <summary>Sends all of <paramref name="buffer"/>.</summary>
    ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct);

    /// <summary>Shuts both directions down and releases the channel; pending operations fail. Idempotent.</summary>
    void Close();
}

/// <summary>A source of accepted <see cref="ITtrpcConnection"/>s (a listening socket).</summary>
public interface ITtrpcListener
{
    /// <summary>
    /// Waits for the next connection. <see cref="ObjectDisposedException"/> once the listener is closed;
    /// <see cref="IOException"/> or <see cref="System.Net.Sockets.SocketException"/> for failures worth retrying (EMFILE).
    /// </summary>
    ValueTask<ITtrpcConnection> AcceptAsync(CancellationToken ct);
}
