/* gateway.audit._disk: one durable write at a time on a thread that never takes the GIL.
 *
 * The request log's loop lane (gateway/audit/writer_thread.py) seals a batch and appends it to the log
 * file on the event loop, then hands this object the one write that makes it durable: a journal frame,
 * pwrite() to a file opened O_DSYNC (gateway/audit/journal.py), optionally after an fdatasync() of
 * another file (the log file, when the journal wraps). The write runs on a plain pthread, which
 * signals an eventfd the loop watches once it is done; the loop then collects the outcome with
 * result(). No Python code runs on that thread, so the GIL is never handed over for it: no futex
 * ping-pong between the loop and a writer, no wait for the loop's switch interval before a batch
 * can start or be handed back.
 *
 *     disk = Disk(done_fd)                       # starts the thread
 *     disk.submit(fd, data, offset, sync_fd=-1)  # at most one write in flight
 *     disk.result()                              # None while it runs, else its errno (0: durable)
 *     disk.close()                               # stops and joins the thread
 *
 * A short write is continued until all of ``data`` is written or a write fails; EINTR is retried.
 * ``data`` (any buffer) is held from submit() until result() reports, so the thread reads memory
 * nobody frees or changes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int initialized; /* mu and cv exist */
    int started;     /* the thread runs (and must be joined) */
    int stop;
    int queued;      /* a job was submitted and result() has not collected it */
    int running;     /* the thread took it */
    int finished;    /* it is done: err is its outcome */
    int done_fd;
    int fd;
    int sync_fd;
    off_t offset;
    Py_buffer view;
    int have_view;
    int err;
} Disk;

static void *disk_main(void *arg) {
    Disk *self = (Disk *)arg;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (!self->stop && !(self->queued && !self->running && !self->finished))
            pthread_cond_wait(&self->cv, &self->mu);
        if (self->stop)
            break;
        self->running = 1;
        int fd = self->fd, sync_fd = self->sync_fd;
        const char *buf = (const char *)self->view.buf;
        size_t left = (size_t)self->view.len;
        off_t at = self->offset;
        pthread_mutex_unlock(&self->mu);

        int err = 0;
        if (sync_fd >= 0) {
            while (fdatasync(sync_fd) != 0) {
                if (errno != EINTR) {
                    err = errno;
                    break;
                }
            }
        }
        while (!err && left > 0) {
            ssize_t n = pwrite(fd, buf, left, at);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                err = errno;
            } else if (n == 0) {
                err = EIO;
            } else {
                buf += n;
                left -= (size_t)n;
                at += n;
            }
        }

        pthread_mutex_lock(&self->mu);
        self->err = err;
        self->finished = 1;
        self->running = 0;
        pthread_mutex_unlock(&self->mu);
        uint64_t one = 1;
        while (write(self->done_fd, &one, sizeof one) < 0 && errno == EINTR) {
        }
        pthread_mutex_lock(&self->mu);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

static void disk_stop(Disk *self) {
    if (!self->started)
        return;
    pthread_mutex_lock(&self->mu);
    self->stop = 1;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(self->thread, NULL);
    Py_END_ALLOW_THREADS
    self->started = 0;
}

static int Disk_init(Disk *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"done_fd", NULL};
    int done_fd;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i", kwlist, &done_fd))
        return -1;
    if (self->initialized) {
        PyErr_SetString(PyExc_RuntimeError, "Disk is already initialized");
        return -1;
    }
    if (pthread_mutex_init(&self->mu, NULL) != 0 || pthread_cond_init(&self->cv, NULL) != 0) {
        PyErr_SetString(PyExc_OSError, "cannot create the disk thread's lock");
        return -1;
    }
    self->initialized = 1;
    self->done_fd = done_fd;
    int rc = pthread_create(&self->thread, NULL, disk_main, self);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->started = 1;
    return 0;
}

static PyObject *Disk_submit(Disk *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"fd", "data", "offset", "sync_fd", NULL};
    int fd, sync_fd = -1;
    long long offset;
    Py_buffer view;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iy*L|i", kwlist, &fd, &view, &offset, &sync_fd))
        return NULL;
    if (!self->started || self->stop) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_RuntimeError, "the disk thread is not running");
        return NULL;
    }
    if (offset < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "negative offset");
        return NULL;
    }
    pthread_mutex_lock(&self->mu);
    if (self->queued) {
        pthread_mutex_unlock(&self->mu);
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_RuntimeError, "a write is already in flight");
        return NULL;
    }
    self->view = view;
    self->have_view = 1;
    self->fd = fd;
    self->sync_fd = sync_fd;
    self->offset = (off_t)offset;
    self->err = 0;
    self->finished = 0;
    self->queued = 1;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
    Py_RETURN_NONE;
}

static PyObject *Disk_result(Disk *self, PyObject *Py_UNUSED(ignored)) {
    pthread_mutex_lock(&self->mu);
    if (!self->queued || !self->finished) {
        pthread_mutex_unlock(&self->mu);
        Py_RETURN_NONE;
    }
    int err = self->err;
    self->queued = 0;
    self->finished = 0;
    int release = self->have_view;
    Py_buffer view = self->view;
    self->have_view = 0;
    pthread_mutex_unlock(&self->mu);
    if (release)
        PyBuffer_Release(&view);
    return PyLong_FromLong(err);
}

static PyObject *Disk_busy(Disk *self, void *Py_UNUSED(closure)) {
    pthread_mutex_lock(&self->mu);
    int queued = self->queued;
    pthread_mutex_unlock(&self->mu);
    return PyBool_FromLong(queued);
}

static PyObject *Disk_close(Disk *self, PyObject *Py_UNUSED(ignored)) {
    disk_stop(self);
    Py_RETURN_NONE;
}

static void Disk_dealloc(Disk *self) {
    disk_stop(self);
    if (self->have_view) {
        PyBuffer_Release(&self->view);
        self->have_view = 0;
    }
    if (self->initialized) {
        pthread_mutex_destroy(&self->mu);
        pthread_cond_destroy(&self->cv);
    }
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef Disk_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))Disk_submit, METH_VARARGS | METH_KEYWORDS,
     "submit(fd, data, offset, sync_fd=-1): on the thread, fdatasync(sync_fd) if it is not -1, then "
     "pwrite all of data at offset; the done eventfd is signalled when it is over."},
    {"result", (PyCFunction)Disk_result, METH_NOARGS,
     "None while no write finished since the last call, else the finished write's errno (0: done)."},
    {"close", (PyCFunction)Disk_close, METH_NOARGS, "Stop the thread (after its current write) and join it."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Disk_getset[] = {
    {"busy", (getter)Disk_busy, NULL, "A write was submitted and its result not collected yet.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Disk_slots[] = {
    {Py_tp_doc, "One durable write at a time on a thread that never takes the GIL."},
    {Py_tp_init, (void *)Disk_init},
    {Py_tp_dealloc, (void *)Disk_dealloc},
    {Py_tp_methods, Disk_methods},
    {Py_tp_getset, Disk_getset},
    {Py_tp_new, (void *)PyType_GenericNew},
    {0, NULL},
};

static PyType_Spec Disk_spec = {
    "gateway.audit._disk.Disk", sizeof(Disk), 0, Py_TPFLAGS_DEFAULT, Disk_slots,
};

static int disk_exec(PyObject *module) {
    PyObject *type = PyType_FromModuleAndSpec(module, &Disk_spec, NULL);
    if (type == NULL)
        return -1;
    if (PyModule_AddObject(module, "Disk", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot disk_module_slots[] = {
    {Py_mod_exec, (void *)disk_exec},
    {0, NULL},
};

static struct PyModuleDef disk_module = {
    PyModuleDef_HEAD_INIT, "gateway.audit._disk",
    "One durable write at a time on a thread that never takes the GIL (see the C source's header).", 0,
    NULL, disk_module_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__disk(void) { return PyModuleDef_Init(&disk_module); }
