namespace Shim.Os.Io;

/// <summary>Something driven by the I/O loop thread: readiness events and scheduled turns.</summary>
internal abstract class IoHandler
{
    /// <summary>True while sitting in the loop's ready queue (loop thread only).</summary>
    internal bool Queued { get; set; }

    /// <summary>Registration and first run, on the loop thread.</summary>
    internal abstract void Start();

    /// <summary>Readiness on one of the handler's fds (edge-triggered), or a scheduled turn (events = 0).</summary>
    internal abstract void OnEvents(uint events);

    /// <summary>The loop is shutting down or the handler threw; release everything.</summary>
    internal abstract void Abort(Exception? error);
}
