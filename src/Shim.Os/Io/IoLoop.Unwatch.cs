namespace Shim.Os.Io;

/// <summary>Synchronous removal of a <see cref="Watch"/> registration.</summary>
public sealed partial class IoLoop
{
    /// <summary>
    /// Disposes a registration returned by <see cref="Watch"/> and waits until the loop thread has
    /// dropped its reference to the fd, so disposing the handle afterwards closes the fd at once.
    /// </summary>
    /// <remarks>
    /// On the loop thread the release is immediate. Elsewhere the wait relies on commands running
    /// in order (Dispose posted the release first). Never call it while holding a lock that a
    /// loop callback may take.
    /// </remarks>
    public void Unwatch(IDisposable registration)
    {
        ArgumentNullException.ThrowIfNull(registration);
        registration.Dispose();
        if (OnLoopThread || _disposed)
        {
            return;
        }
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() => released.TrySetResult());
        // If the loop stops meanwhile its shutdown releases every registration; do not wait forever.
        while (!released.Task.Wait(100))
        {
            if (_disposed || !_thread.IsAlive)
            {
                return;
            }
        }
    }
}
