using System.Diagnostics.CodeAnalysis;
using System.Runtime.ExceptionServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os;
using Shim.Os.Notify;

namespace Shim.Core.Cgroups;

/// <summary>One watched container, and its v1 flavour.</summary>
public sealed partial class OomWatcher
{
    /// <summary>A container's watch: polled by loop events and by Drain under its Gate.</summary>
    private abstract class Watch(OomWatcher owner, string id, Action<string> onOom)
    {
        /// <summary>Serialises polls and reports of this container (loop thread vs Drain).</summary>
        protected readonly object Gate = new();

        public string Id { get; } = id;

        protected OomWatcher Owner { get; } = owner;

        // Gate: no more polls once set; resources are released (once) outside the Gate.
        protected bool Closed { get; private set; }

        // Gate: set once the fds/watches are in place; polls before that do nothing.
        protected bool Armed { get; set; }

        /// <summary>Polls and reports; removes the watch when the cgroup is gone. <paramref name="lost"/>: the kernel dropped a watch.</summary>
        public void Check(bool lost)
        {
            bool gone, keep = false;
            Exception? failure = null;
            lock (Gate)
            {
                if (Closed || !Armed)
                {
                    return;
                }
                (bool oom, gone) = Poll(lost);
                if (gone)
                {
                    Closed = true;
                    keep = KeepWhenGone;
                }
                if (oom)
                {
                    failure = Report();
                }
            }
            if (gone)
            {
                if (!keep)
                {
                    Owner.Forget(this);
                }
                Release();
            }
            if (failure is not null)
            {
                ExceptionDispatchInfo.Throw(failure);
            }
        }

        /// <summary>The init exited with <paramref name="status"/>: reports a kill only the exit can attribute (true then); a watch kept for it goes.</summary>
        public bool InitExited(int status)
        {
            Exception? failure = null;
            bool closed, claimed;
            lock (Gate)
            {
                claimed = ClaimAtInitExit(status);
                if (claimed)
                {
                    failure = Report();
                }
                closed = Closed;
            }
            if (closed)
            {
                Owner.Forget(this);
            }
            if (failure is not null)
            {
                ExceptionDispatchInfo.Throw(failure);
            }
            return claimed;
        }

        /// <summary>The shim is about to send the init <paramref name="signal"/>: polls first, so what the cgroup shows now is reported.</summary>
        public void BeforeSignal(uint signal)
        {
            lock (Gate)
            {
                Signalling(signal);
            }
            Check(lost: false);
        }

        /// <summary>Stops polling and releases the fds/watches; false when already closed.</summary>
        public bool Close()
        {
            lock (Gate)
            {
                if (Closed)
                {
                    return false;
                }
                Closed = true;
            }
            Release();
            return true;
        }

        /// <summary>Gate held: is there a new OOM, and is the cgroup gone?</summary>
        protected abstract (bool Oom, bool Gone) Poll(bool lost);

        /// <summary>Gate held: the cgroup is gone but the watch stays findable for <see cref="InitExited"/>.</summary>
        protected virtual bool KeepWhenGone => false;

        /// <summary>Gate held: notes that the shim is about to send the init <paramref name="signal"/>.</summary>
        protected virtual void Signalling(uint signal)
        {
        }

        /// <summary>Gate held: whether the init's exit with <paramref name="status"/> makes an OOM to report now.</summary>
        protected virtual bool ClaimAtInitExit(int status) => false;

        /// <summary>Gate held: runs the callback; its failure is returned, to be rethrown once the Gate is left.</summary>
        [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "the callback's failure is rethrown by the caller once the watch is released, so a throwing callback cannot leave the watch half-closed")]
        private Exception? Report()
        {
            try
            {
                onOom(Id);
                return null;
            }
            catch (Exception ex)
            {
                return ex;
            }
        }

        /// <summary>Releases fds/watches; idempotent; called without the Gate.</summary>
        protected abstract void Release();

        /// <summary>Under the Gate: true (and armed) unless closed meanwhile.</summary>
        protected bool TryArm()
        {
            lock (Gate)
            {
                if (Closed)
                {
                    return false;
                }
                Armed = true;
                return true;
            }
        }
    }

    /// <summary>v1: an eventfd registered on memory.oom_control, watched on the loop.</summary>
    private sealed class V1Watch(OomWatcher owner, string id, Action<string> onOom, string memoryDirectory)
        : Watch(owner, id, onOom)
    {
        // Gate (and Release).
        private SafeFileHandle? _eventFd;
        private IDisposable? _registration;

        /// <summary>Puts the registered eventfd on the loop; takes ownership of it.</summary>
        public void Arm(SafeFileHandle eventFd)
        {
            IDisposable registration;
            try
            {
                registration = Owner._loop.Watch(eventFd, () => Check(lost: false));
            }
            catch
            {
                eventFd.Dispose();
                throw;
            }
            lock (Gate)
            {
                _eventFd = eventFd;
                _registration = registration;
            }
            if (!TryArm())
            {
                Release();   // removed while being added
            }
        }

        protected override (bool Oom, bool Gone) Poll(bool lost)
        {
            if (_eventFd is null || !EventFd.TryRead(_eventFd, out _))
            {
                return (false, false);
            }
            // The kernel signals the eventfd once more when the cgroup is removed.
            return Directory.Exists(memoryDirectory) ? (true, false) : (false, true);
        }

        protected override void Release()
        {
            SafeFileHandle? eventFd;
            IDisposable? registration;
            lock (Gate)
            {
                eventFd = _eventFd;
                registration = _registration;
                _eventFd = null;
                _registration = null;
            }
            if (registration is not null)
            {
                Owner._loop.Unwatch(registration);   // the loop lets go of the fd first, so the close below is immediate
            }
            eventFd?.Dispose();
        }
    }
}
