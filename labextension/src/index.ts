/**
 * jupyter-workflows: a left-sidebar panel over the server extension's REST API, palette
 * commands to run a workflow and show the executions, and "Run workflow" on workflow files
 * in the file browser.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { LabIcon } from '@jupyterlab/ui-components';

import { listWorkflows } from './api';
import { errorMessage } from './format';
import { WorkflowsPanel, reportError } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="5" cy="6" r="3"/><circle cx="5" cy="18" r="3"/><circle cx="19" cy="12" r="3"/>
    <path d="M7.5 7.2l8.6 3.9-.8 1.8-8.6-3.9zM7.5 16.8l8.6-3.9-.8-1.8-8.6 3.9z"/>
  </g>
</svg>`;

export const workflowsIcon = new LabIcon({
  name: 'jupyter-workflows:icon',
  svgstr: ICON_SVG
});

namespace CommandIDs {
  export const run = 'jupyter-workflows:run';
  export const runFile = 'jupyter-workflows:run-file';
  export const showExecutions = 'jupyter-workflows:show-executions';
}

/**
 * Workflow files the context menu offers to run: the ones the server lists, definitions under
 * workflows/definitions/ and any *.workflow.json|yaml|yml (not every JSON file).
 */
const WORKFLOW_FILE = /(^|\/)workflows\/definitions\/.+\.(json|ya?ml)$|\.workflow\.(json|ya?ml)$/i;

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-workflows:plugin',
  description: 'A side panel to run workflows and follow their executions.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, IFileBrowserFactory],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    browsers: IFileBrowserFactory | null
  ) => {
    const panel = new WorkflowsPanel((path, line, column) => {
      app.commands
        // At a line (a validation problem), in the text editor: JupyterLab's default for a
        // .json file is the JSON tree viewer, which has no lines to go to.
        .execute(
          'docmanager:open',
          line != null && !path.endsWith('.ipynb') ? { path, factory: 'Editor' } : { path }
        )
        .then(widget => {
          if (line != null) {
            void revealLine(widget, line, column ?? 1);
          }
        })
        .catch(error => {
          // Executed notebooks are kept under workflows/.executions/: a hidden folder, which
          // Jupyter's contents API refuses unless the server allows hidden files.
          const hidden = path.split('/').some(part => part.startsWith('.'));
          reportError(
            `Cannot open ${path}`,
            hidden
              ? `${errorMessage(error)}\nJupyter does not open files in hidden folders: start ` +
                  'JupyterLab with --ContentsManager.allow_hidden=True to open it.'
              : error
          );
        });
    });
    panel.title.icon = workflowsIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'jupyter-workflows');

    app.commands.addCommand(CommandIDs.run, {
      label: args => (args.path ? `Run workflow ${args.path}` : 'Run workflow...'),
      caption: 'Run a workflow of this project and follow it in the Workflows panel',
      icon: workflowsIcon,
      execute: async args => {
        const path = (args.path as string | undefined) ?? (await pickWorkflow());
        if (path) {
          app.shell.activateById(panel.id);
          return panel.run(path);
        }
        return null;
      }
    });

    app.commands.addCommand(CommandIDs.showExecutions, {
      label: 'Show workflow executions',
      caption: 'Open the Workflows panel on the executions',
      icon: workflowsIcon,
      execute: () => {
        app.shell.activateById(panel.id);
        panel.showHome(true);
        return panel.refresh();
      }
    });

    const selectedFile = (): string | null => {
      const browser = browsers?.tracker.currentWidget;
      const item = browser?.selectedItems().next();
      if (!item || item.done || item.value.type === 'directory') {
        return null;
      }
      return WORKFLOW_FILE.test(item.value.path) ? item.value.path : null;
    };
    app.commands.addCommand(CommandIDs.runFile, {
      label: 'Run workflow',
      caption: 'Run this workflow file and follow it in the Workflows panel',
      icon: workflowsIcon,
      isVisible: () => selectedFile() !== null,
      execute: () => {
        const path = selectedFile();
        return path ? app.commands.execute(CommandIDs.run, { path }) : null;
      }
    });
    app.contextMenu.addItem({
      command: CommandIDs.runFile,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 3
    });

    if (palette) {
      const category = 'Workflows';
      palette.addItem({ command: CommandIDs.run, category });
      palette.addItem({ command: CommandIDs.showExecutions, category });
    }
  }
};

/**
 * Put the cursor of an opened text document at a 1-based `line` and `column` and scroll it
 * into view (a validation problem's place); other documents (a notebook) are left as opened.
 */
async function revealLine(widget: unknown, line: number, column: number): Promise<void> {
  // The parts of a FileEditor document used here (typed locally: no dependency on
  // @jupyterlab/codeeditor for three calls).
  type Position = { line: number; column: number };
  const doc = widget as {
    context?: { ready: Promise<void> };
    content?: {
      editor?: {
        setCursorPosition(position: Position): void;
        revealPosition(position: Position): void;
        focus(): void;
      };
    };
  };
  await doc?.context?.ready;
  const editor = doc?.content?.editor;
  if (!editor) {
    return;
  }
  const position = { line: Math.max(0, line - 1), column: Math.max(0, column - 1) };
  editor.setCursorPosition(position);
  editor.revealPosition(position);
  editor.focus();
}

/** Ask which workflow to run, from the ones the server lists. */
async function pickWorkflow(): Promise<string | null> {
  let paths: string[];
  try {
    paths = (await listWorkflows()).map(workflow => workflow.path);
  } catch (error) {
    reportError('Cannot list workflows', error);
    return null;
  }
  if (!paths.length) {
    reportError(
      'No workflow to run',
      'No workflow found under workflows/definitions/ or named *.workflow.json|yaml.'
    );
    return null;
  }
  const result = await InputDialog.getItem({
    title: 'Run workflow',
    label: 'Workflow',
    items: paths,
    okLabel: 'Run'
  });
  return result.button.accept ? result.value : null;
}

export default plugin;
