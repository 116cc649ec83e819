// A button for a destructive action: it asks first, in a modal <dialog> (the browser traps focus,
// Escape cancels, and focus returns to the button), saying what will be lost. Cancel has the focus,
// so Enter on an accidental click loses nothing.

import { useId, useRef, type ReactNode } from 'react';

export function ConfirmButton({
  children,
  title,
  body,
  confirmLabel,
  onConfirm,
  className = 'button button--secondary',
  disabled,
  'aria-label': ariaLabel,
}: {
  children: ReactNode;
  /** The question, e.g. "Remove the source “OpenRouter”?" (the dialog's name). */
  title: string;
  /** What will be lost, and what stays. */
  body: ReactNode;
  /** The confirming button's text, e.g. "Remove source". */
  confirmLabel: string;
  onConfirm: () => void | Promise<void>;
  className?: string;
  disabled?: boolean;
  'aria-label'?: string;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  const id = useId();
  const close = () => dialog.current?.close();
  return (
    <>
      <button
        type="button"
        className={className}
        disabled={disabled}
        aria-label={ariaLabel}
        aria-haspopup="dialog"
        onClick={() => {
          dialog.current?.showModal();
          cancel.current?.focus();
        }}
      >
        {children}
      </button>
      <dialog ref={dialog} className="confirm-dialog" aria-labelledby={`${id}-title`} aria-describedby={`${id}-body`}>
        <h2 id={`${id}-title`}>{title}</h2>
        <div id={`${id}-body`} className="confirm-body">
          {body}
        </div>
        <div className="actions">
          <button ref={cancel} type="button" className="button button--secondary" onClick={close}>
            Cancel
          </button>
          <button
            type="button"
            className="button button--danger"
            onClick={() => {
              close();
              void onConfirm();
            }}
          >
            {confirmLabel}
          </button>
        </div>
      </dialog>
    </>
  );
}
