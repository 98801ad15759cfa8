using System.Runtime.InteropServices;
using Shim.Os;

namespace Shim.Core.Tests.Stdio;

/// <summary>A temporary directory for FIFOs and logs, and the process's side of the stdio handles.</summary>
internal sealed class StdioTestFiles : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("rcs-stdio-").FullName;

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Creates a FIFO named <paramref name="name"/> and returns its path.</summary>
    public string Fifo(string name)
    {
        string path = Path.Combine(Dir, name);
        Fifos.Create(path);
        return path;
    }

    /// <summary>
    /// What the process holds of a handle runc got: a second open of it, which stays valid after
    /// ProcessIo.Start closes the shim's copy.
    /// </summary>
    public static FileStream ProcessEnd(SafeHandle runcEnd, FileAccess access) =>
#pragma warning disable CA2000 // the returned FileStream owns the handle
        new(File.OpenHandle($"/proc/self/fd/{runcEnd.DangerousGetHandle()}", FileMode.Open, access), access, bufferSize: 0);
#pragma warning restore CA2000

    /// <summary>Opens the client's end of a FIFO (its reader or writer).</summary>
    public static FileStream Client(string fifo, FileAccess access) =>
        new(fifo, FileMode.Open, access, FileShare.ReadWrite, bufferSize: 0);

    /// <summary>Reads <paramref name="stream"/> to its end.</summary>
    public static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        var got = new MemoryStream();
        await stream.CopyToAsync(got, Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        return got.ToArray();
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}
