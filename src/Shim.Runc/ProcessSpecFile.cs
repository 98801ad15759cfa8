namespace Shim.Runc;

/// <summary>
/// The OCI process spec of one <c>runc exec</c> in a temp file that only its owner can read: it
/// carries the exec's arguments and environment. go-runc creates it the same way (os.CreateTemp in
/// $XDG_RUNTIME_DIR, else the temp dir; mode 0600). Removed on dispose.
/// </summary>
internal sealed class ProcessSpecFile : IDisposable
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private ProcessSpecFile(string path) => Path = path;

    /// <summary>Where the spec is, for <c>runc exec --process</c>.</summary>
    public string Path { get; }

    /// <summary>
    /// Creates the file (O_EXCL, 0600 from the start: there is no moment it is readable by others) and
    /// writes <paramref name="json"/>; <paramref name="prefix"/> starts its name (the update's
    /// resources use the same kind of file).
    /// </summary>
    public static ProcessSpecFile Write(ReadOnlySpan<byte> json, string prefix = "runc-process")
    {
        string? runtimeDir = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        string dir = string.IsNullOrEmpty(runtimeDir) ? System.IO.Path.GetTempPath() : runtimeDir;
        string path = System.IO.Path.Combine(dir, $"{prefix}{Guid.NewGuid():N}.json");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, UnixCreateMode = OwnerOnly };
        var file = new ProcessSpecFile(path);
        try
        {
            using var stream = new FileStream(path, options);
            stream.Write(json);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Removes the file.</summary>
    public void Dispose()
    {
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
            // runc has read it by now; a leftover in the temp dir is not worth failing the exec for
        }
    }
}
